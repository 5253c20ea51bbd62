"""Engine adapters (llama.cpp, ...) and the Ray pool that places and supervises replicas."""
