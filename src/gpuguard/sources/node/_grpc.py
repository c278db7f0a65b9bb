"""The unary gRPC plumbing both node clients share (containerd, the kubelet): one unix socket, no generated code.

The channel is opened on first use and dropped after any failure, so a
restarted daemon is reached again on the next call instead of waiting out
gRPC's reconnect backoff.  Each client words its own errors (``_rpc_failed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from gpuguard.sources.node.errors import NodeSourceError


class UnixGrpcClient:
    """A unary gRPC client on one unix socket; ``source`` names it in ``NodeSourceError``."""

    source = ""

    def __init__(self, socket_path: str, timeout: float, options: Sequence[tuple[str, int]]) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._options = list(options)  # gRPC channel arguments
        self._channel: grpc.Channel | None = None

    def _check_socket(self) -> None:
        """Raise ``NodeSourceError`` when there is no socket to call (before gRPC waits on a missing one)."""

    def _rpc_failed(self, method: str, code: grpc.StatusCode | None, detail: str) -> str:
        """The error text for a call the server refused or did not answer."""
        raise NotImplementedError

    def _unreadable(self, method: str, error: DecodeError) -> str:
        """The error text for an answer that is not the message it should be."""
        return f"{method} at {self.socket_path}: an unreadable message: {error}"

    def _unary(self, method: str, request: Any, response: Any, metadata: Sequence[tuple[str, str]] = ()) -> Any:
        self._check_socket()
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"unix://{self.socket_path}", options=self._options)
        stub = self._channel.unary_unary(
            method, request_serializer=type(request).SerializeToString, response_deserializer=response.FromString
        )
        try:
            return stub(request, timeout=self.timeout, metadata=tuple(metadata))
        except grpc.RpcError as e:
            self.close()
            code = e.code() if isinstance(e, grpc.Call) else None
            detail = e.details() if isinstance(e, grpc.Call) else str(e)
            raise NodeSourceError(self.source, self._rpc_failed(method, code, detail)) from None
        except DecodeError as e:
            self.close()
            raise NodeSourceError(self.source, self._unreadable(method, e)) from None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
