"""engine/device_plugin."""
