"""The Celery side: the app and its queues (``app``), thin idempotent tasks (``tasks``) that
call the pure packages and ``store``, and what they run: ``resolving`` (tokenURI by
``contract_reads`` → ``tokenmeta``), ``embedding`` (the one embed path, for the batch queue and
the urgent valuation), ``valuing`` (comparables and the valuation model) and the outbox
``dispatcher``. ``errors`` holds what a token's read came to, recorded on its row."""
