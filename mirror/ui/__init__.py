"""The web dashboard (`/ui/` on the main port): repositories, tags, images and what the
cache saves. Server-rendered pages (starlette, Jinja2) with a vendored htmx and no build
step; every figure comes from the store, the metadata store and the metrics the API uses,
never from the server's own HTTP API. `mirror.proxy.dashboard` wires it from the
configuration; nothing here reads the configuration."""
