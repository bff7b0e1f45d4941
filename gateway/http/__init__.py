"""HTTP inside the daemon's event loop: the uvicorn server as one async context manager
(`server`) and the middleware that bounds what one request may cost (`guard`). The analysts'
API (gateway.api) and the centre's endpoint (gateway.centre) are served by it."""
