"""One module per page (or group of pages) of the console; each adds its routes to the router."""
