"""The CoarSR network, its weights files and the inference engine that runs it on a CPU or GPU."""
