"""Pure assessment of network-scan results: which open ports and TLS/SSH facts are findings."""
