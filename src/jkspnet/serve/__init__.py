"""The web service: the app, the API's parsing, the batcher, the photo work."""
