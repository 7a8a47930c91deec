"""The web layer: the Gradio page (:mod:`webapp.page`), its handlers (:mod:`webapp.handlers`), what they
draw (:mod:`webapp.rendering`) and the wiring from settings to a running app (:mod:`webapp.wiring`).

Only this package knows Gradio; the core (:mod:`lookalike`) imports without it.
"""
