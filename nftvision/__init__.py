"""Vision: image preprocessing, feature extractors (the raw-RGB and colour-gradient baselines, an
offline pretrained EfficientNet-Lite0, VGG16/VGG19/ResNet50 from user-supplied weights), image
datasets of real collections, and the similarity analysis that compares extractors.

The public face: ``extractors.get_extractor`` and ``extractors.Extractor``, ``preprocess``,
``similarity.analyse`` and the error tree in ``errors``. Decoded images come from ``tokenmeta``.
"""
