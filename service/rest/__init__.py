"""The HTTP transport: the FastAPI app, its routes and middleware, the page and the docs."""
