"""RouteRecord JSONL writer: buffered on the loop, written in a thread, size-rotated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import orjson

from switchyard.config.schema import RecordsConfig
from switchyard.types import RouteRecord

logger = logging.getLogger(__name__)


class RecordWriter:
    def __init__(self, config: RecordsConfig, flush_interval_s: float = 0.2) -> None:
        self._config = config
        self._path = Path(config.path)
        self._buffer: list[bytes] = []
        self._interval = flush_interval_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def add(self, record: RouteRecord) -> None:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_OMIT_MICROSECONDS)
        self._buffer.append(line)

    def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="switchyard-records")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        async with self._lock:
            lines, self._buffer = self._buffer, []
            try:
                await asyncio.to_thread(self._write, b"".join(lines))
            except OSError:
                logger.exception("cannot write route records to %s", self._path)

    def _write(self, data: bytes) -> None:
        if self._path.exists() and self._path.stat().st_size + len(data) > self._config.max_bytes:
            self._rotate()
        with self._path.open("ab") as handle:
            handle.write(data)

    def _rotate(self) -> None:
        backups = self._config.backups
        if backups == 0:
            self._path.unlink(missing_ok=True)
            return
        for index in range(backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{index}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{index + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
