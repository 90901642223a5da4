"""The transport seam (dagcheck.remote.base): run a cmdlet on a server's endpoint, get deserialized objects, record the call."""
