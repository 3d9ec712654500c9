"""The API: FastAPI REST routes, the bare OpenRTB bid route, and the gRPC BiddingService."""
