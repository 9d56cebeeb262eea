"""ethereum-etl's side of the ingest comparison; runs inside ethereum-etl's own virtual
environment (started by ``bench/etl_compare.py``, never imported by the project).

    python etl_runner.py LOGS.json BLOCKS.json POSTGRES_URL CHUNK

LOGS.json holds the recorded ``eth_getLogs`` result (node JSON, as our side reads it); BLOCKS.json
maps block hash -> unix timestamp (ethereum-etl's streamer joins token transfers with their block
for ``block_timestamp``). Per chunk it does what its ``export_token_transfers`` job does per log
(``EthReceiptLogMapper`` -> ``EthTokenTransferExtractor`` -> ``EthTokenTransferMapper``), enriches
like its streamer, then writes with its own ``PostgresItemExporter`` (SQLAlchemy ``executemany``
of its ``token_transfers`` upsert, its converters; SQL echo off). Prints one JSON line of timings.
"""

import json
import sys
import time

from blockchainetl.jobs.exporters.converters.int_to_decimal_item_converter import (
    IntToDecimalItemConverter,
)
from blockchainetl.jobs.exporters.converters.unix_timestamp_item_converter import (
    UnixTimestampItemConverter,
)
from blockchainetl.jobs.exporters.postgres_item_exporter import PostgresItemExporter
from blockchainetl.streaming.postgres_utils import create_insert_statement_for_table
from ethereumetl.mappers.receipt_log_mapper import EthReceiptLogMapper
from ethereumetl.mappers.token_transfer_mapper import EthTokenTransferMapper
from ethereumetl.service.token_transfer_extractor import EthTokenTransferExtractor
from ethereumetl.streaming.postgres_tables import TOKEN_TRANSFERS


def extract(logs, times, log_mapper, extractor, tt_mapper):
    items = []
    nft = 0
    for log in logs:
        tt = extractor.extract_transfer_from_log(log_mapper.json_dict_to_receipt_log(log))
        if tt is None:
            continue
        item = tt_mapper.token_transfer_to_dict(tt)
        if len(log["topics"]) == 4:  # the ERC-721 shape; the rest it extracts is ERC-20
            nft += 1
        item["block_timestamp"] = times[log["blockHash"]]
        item["block_hash"] = log["blockHash"]
        items.append(item)
    return items, nft


def main():
    logs_path, blocks_path, url, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(logs_path) as f:
        logs = json.load(f)
    with open(blocks_path) as f:
        times = json.load(f)
    log_mapper = EthReceiptLogMapper()
    extractor = EthTokenTransferExtractor()
    tt_mapper = EthTokenTransferMapper()

    t0 = time.perf_counter()
    _, nft = extract(logs, times, log_mapper, extractor, tt_mapper)
    t_decode = time.perf_counter() - t0

    exporter = PostgresItemExporter(
        url,
        item_type_to_insert_stmt_mapping={
            "token_transfer": create_insert_statement_for_table(TOKEN_TRANSFERS)
        },
        converters=[UnixTimestampItemConverter(), IntToDecimalItemConverter()],
        print_sql=False,
    )
    with exporter.engine.begin() as c:
        TOKEN_TRANSFERS.drop(c, checkfirst=True)
        TOKEN_TRANSFERS.create(c)

    t0 = time.perf_counter()
    exporter.open()
    rows = 0
    for i in range(0, len(logs), chunk):
        items, _ = extract(logs[i : i + chunk], times, log_mapper, extractor, tt_mapper)
        exporter.export_items(items)
        rows += len(items)
    exporter.close()
    t_e2e = time.perf_counter() - t0

    with exporter.engine.connect() as c:
        stored = c.execute("SELECT count(*) FROM token_transfers").scalar()
        c.execute("DROP TABLE token_transfers")
    print(
        json.dumps(
            {
                "decode_s": t_decode,
                "e2e_s": t_e2e,
                "nft_logs": nft,
                "rows": rows,
                "stored": stored,
            }
        )
    )


if __name__ == "__main__":
    main()
