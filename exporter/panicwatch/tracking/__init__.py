"""What is followed across scrapes because the kernel does not say it: the ages of RPC tasks."""
