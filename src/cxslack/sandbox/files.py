"""The sandbox's file uploads: the upload URL files.getUploadURLExternal hands out, and admin views.

Step 2 of Slack's external upload (docs.slack.dev/reference/methods/files.getUploadURLExternal):
"Upload a file by making a POST request to the upload URL … Files can be sent as raw bytes or can
be multipart form encoded. Slack will return HTTP 200 if the upload is successful; a non-200
response indicates a failure." The sandbox answers 200 only for bytes whose count is the `length`
announced in step 1 (the argument is "Size in bytes of the file being uploaded"), once per URL;
an unknown URL is 404. Steps 1 and 3 are Web API methods (slack_api.py, rules.py).

Admin routes (JSON, not Slack's API):
  GET /_sandbox/files                  every upload: id, name, title, alt_txt, length, size, mimetype,
                                       completed, shares [{channel, ts, thread_ts}]
  GET /_sandbox/files/content?id=F…    the bytes of one, as uploaded
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxslack.sandbox.wire import ADMIN_PREFIX, AdminError, Body, Request, Response, Router, json_route

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

UPLOAD_PREFIX = "/upload/v1/"
UPLOAD_METHOD = "files.upload_url"  # its name in the call log and for faults (not a Web API method)


class FilesApi:
    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.ws = sandbox.workspace

    def register(self, router: Router) -> None:
        router.add("POST", UPLOAD_PREFIX, self.upload)
        router.add("GET", ADMIN_PREFIX + "files/content", self.content)
        router.add("GET", ADMIN_PREFIX + "files", json_route("GET", self.list))

    def upload(self, request: Request) -> Response:
        stopped = self.sandbox.traffic.gate(UPLOAD_METHOD)
        if stopped is not None:
            return stopped
        data = _file_bytes(request)
        with self.ws.lock:
            file = self.ws.file_by_upload_key(request.path.removeprefix(UPLOAD_PREFIX))
            if file is None:
                return _text(404, "not found")
            if file.data is not None or file.completed:
                return _text(400, "already uploaded")
            if len(data) != file.length:
                return _text(400, f"length mismatch: {len(data)} bytes sent, {file.length} announced")
            file.data = data
        return _text(200, f"OK - {len(data)}")

    def list(self, body: Body) -> Body:
        with self.ws.lock:
            return {"files": [_summary(f) for f in self.ws.files.values()]}

    def content(self, request: Request) -> Response:
        ref = request.query_params().get("id", "")
        with self.ws.lock:
            file = self.ws.files.get(ref)
            data = file.data if file is not None else None
            mimetype = file.mimetype if file is not None else ""
        if data is None:
            error = AdminError(404, "file_not_found", f"no uploaded file {ref!r}")
            return Response.json(error.status, {"ok": False, "error": error.error, "detail": error.detail})
        return Response(200, data, content_type=mimetype)


def _summary(file: Any) -> dict[str, Any]:
    return {"id": file.id, "name": file.name, "title": file.title, "alt_txt": file.alt_txt, "length": file.length,
            "size": len(file.data or b""), "mimetype": file.mimetype, "completed": file.completed,
            "shares": list(file.shares)}  # fmt: skip


def _file_bytes(request: Request) -> bytes:
    """Raw bytes, or the (first) file part of a multipart form."""
    if request.content_type != "multipart/form-data":
        return request.body
    from email.message import Message
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.header("Content-Type").encode("latin-1") + b"\r\n\r\n" + request.body
    )
    for part in message.iter_parts() if message.is_multipart() else ():
        assert isinstance(part, Message)
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload
    return b""


def _text(status: int, text: str) -> Response:
    return Response(status, text.encode(), content_type="text/plain; charset=utf-8")
