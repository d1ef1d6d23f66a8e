"""Evidence files over HTTP, for every area (attestations, remediation) and for the API and the console
alike: one multipart file read with a bound, and sent back so no browser renders it in our origin."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import FormData, UploadFile

from collector.attestations.evidence import Staged, stage
from collector.errors import InvalidInput, KhienError, PayloadTooLarge

# Room for the multipart boundaries, part headers and a few small fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


def check_declared_size(request: Request, *, max_bytes: int) -> None:
    """Refuse before reading: a body with no length (chunked) or a declared length over the cap."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise KhienError("send the upload with a Content-Length header")
    if int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"evidence file over the {max_bytes}-byte limit")


async def read_form(request: Request) -> FormData:
    return await request.form(max_files=1, max_fields=4)


async def stage_from(form: FormData, *, data_dir: Path, max_bytes: int) -> Staged:
    """Copy the form's ``file`` to the evidence temp area, capped and type-checked (off the event loop)."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file: a multipart file field named 'file' is required")
    return await run_in_threadpool(stage, data_dir=data_dir, max_bytes=max_bytes, filename=upload.filename or "",
                                   stream=upload.file)


def evidence_response(path: Path, *, filename: str, content_type: str,
                      headers: dict[str, str] | None = None) -> FileResponse:
    """Evidence comes from other people: never let a browser guess a type or render it in our origin."""
    return FileResponse(path, media_type=content_type, filename=filename, content_disposition_type="attachment",
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox", **(headers or {})})
