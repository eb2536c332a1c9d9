"""The HTTP and Socket.IO edge of Bourse: FastAPI routers wrapped in a socketio.ASGIApp."""
