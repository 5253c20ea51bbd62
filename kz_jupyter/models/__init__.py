"""Models: references, the Hub, downloads and their verification, file choice, GGUF and
safetensors metadata, the local cache and presets."""
