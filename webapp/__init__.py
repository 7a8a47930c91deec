"""The web layer: the Gradio page (:mod:`webapp.page`), its handlers (:mod:`webapp.handlers`), what they
draw (:mod:`webapp.rendering`), the traffic middleware in front (:mod:`webapp.traffic`), the background fill
(:mod:`webapp.fill`), ZeroGPU (:mod:`webapp.zerogpu`) and the wiring from settings to a running app
(:mod:`webapp.wiring`).

Only this package knows Gradio; the core (:mod:`lookalike`) imports without it.
"""
