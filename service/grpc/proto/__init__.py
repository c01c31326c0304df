"""KServe's grpc_predict_v2.proto and the stubs generated from it (see README.md here)."""
