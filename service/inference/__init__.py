"""The inference core: model and card, preprocessing, the V2 codec, the dataplane, limits and
errors. It imports no web framework; the transports (``service.rest``) translate to and from it.
"""
