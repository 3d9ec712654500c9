"""gRPC ``BiddingService``: OpenRTB JSON framed in protobuf, served beside REST.

``bidding_pb2*.py`` are generated from ``bidding.proto``; regenerate from the repository root
with ``python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=.
api/grpc/bidding.proto`` (a test fails when they drift).
"""
