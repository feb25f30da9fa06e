"""The HTTP adapter: FastAPI routers over the actions of `geo.service` and the atlas."""
