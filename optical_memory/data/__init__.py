"""Package data: the tiktoken BPE files (o200k_base, cl100k_base) so token counting works offline."""
