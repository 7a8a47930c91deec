"""The web app's settings: the core's (:class:`lookalike.settings.Settings`) and the app's own, read from
the same environment with the same variable names.

Where the app listens, MCP, torch's threads per search, the background fill, and the traffic limits of
:mod:`webapp.traffic` concern the app alone, so they live here and not in the core's settings.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from lookalike.settings import Settings


class AppSettings(Settings):
    """:class:`lookalike.settings.Settings` plus the fields only the web app reads."""

    fill_sources: tuple[str, ...] = Field(
        default=(),
        description="Sources the app's background fill reads when the embedded store is empty, as a JSON "
        'list (e.g. \'["path/to/people"]\'); empty means the default sources of `python -m indexing` less '
        "ashraq/tmdb-people-image (3.7 GB of whole files to download for a sample).",
    )
    fill_sample: int = Field(
        default=1000, ge=0,
        description="Photos the background fill indexes per source (one per person, chosen at random); "
        "0 turns the background fill off.",
    )
    torch_threads: int = Field(
        default=1, ge=1, description="torch threads per search in the app (the queue runs 2 searches at once).")
    mcp: bool = Field(default=True, description="Serve the /lookalike endpoint as an MCP tool too.")
    server_name: str = Field(
        default="0.0.0.0",
        validation_alias=AliasChoices("LOOKALIKE_SERVER_NAME", "GRADIO_SERVER_NAME"),
        description="Address the app listens on.",
    )
    server_port: int = Field(
        default=7860, ge=1, le=65535,
        validation_alias=AliasChoices("LOOKALIKE_SERVER_PORT", "GRADIO_SERVER_PORT"),
        description="Port the app listens on.",
    )
    max_upload_mb: float = Field(
        default=15.0, gt=0,
        description="Uploads larger than this (MB) are refused at the upload route, before they are written.")
    api_calls_per_minute: int = Field(
        default=60, ge=0,
        description="API and MCP tool calls one client may make in any minute (the page is not counted); "
        "0: no limit.")
    proxy_hops: int = Field(
        default=1, ge=0,
        description="Trusted proxies in front of the app (a Space has one): the client is the address the "
        "nearest of them appended to X-Forwarded-For; 0: the connection's peer, the header ignored.")
    private_mode: bool = Field(
        default=True,
        description="Offer private mode: the page finds and embeds faces in the visitor's browser and sends "
        "only their boxes and vectors; 0: every search sends the photo to the server.")
    cross_origin_isolation: bool = Field(
        default=True,
        description="Send COOP and COEP headers, so that a browser opening the app directly (not inside "
        "another site's frame) runs private mode's wasm on several threads.")
