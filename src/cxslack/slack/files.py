"""Sharing a file into a Slack thread, in the three steps Slack requires since files.upload was
retired (docs.slack.dev/reference/methods/files.getUploadURLExternal, …/files.completeUploadExternal):

1. `files.getUploadURLExternal` with `filename`, `length` (bytes) and `alt_txt` (at most 1,000
   characters) answers an `upload_url` and a `file_id`;
2. the bytes are POSTed to `upload_url` (raw; HTTP 200 means received);
3. `files.completeUploadExternal` with `files=[{"id", "title"}]`, `channel_id` (an ID: a name is
   `invalid_arguments`) and `thread_ts` (the thread's parent) shares it: a message with the file
   appears in the thread. Both methods need `files:write`; step 3 needs the app to be a member of
   the channel (`not_in_channel`, whatever chat:write.public allows for messages).

Step 3 "can only be called once": a second call for the same file fails (`file_not_found`)
whether or not the first one's answer arrived, so sending it again never shares a file twice.
"""

from __future__ import annotations

from typing import Any

from cxslack.slack.client import SlackAccess, SlackError

UPLOAD_TIMEOUT = 30.0  # seconds for the bytes to go up and Slack's 200 to come back


def start_upload(access: SlackAccess, filename: str, data: bytes, alt_text: str) -> str:
    """Steps 1 and 2: the file's bytes are with Slack, not yet shared anywhere; returns its id."""
    body, _ = access.call("files.getUploadURLExternal", filename=filename, length=len(data), alt_txt=alt_text)
    url, file_id = body.get("upload_url"), body.get("file_id")
    if not isinstance(url, str) or not isinstance(file_id, str) or not url or not file_id:
        raise SlackError("upload_failed", "Slack answered files.getUploadURLExternal without an upload URL")
    _send_bytes(url, data, filename, access.timeout)
    return file_id


def _send_bytes(url: str, data: bytes, filename: str, connect_timeout: float) -> None:
    import httpx

    try:
        response = httpx.post(url, content=data, headers={"Content-Type": "application/octet-stream"},
                              timeout=httpx.Timeout(UPLOAD_TIMEOUT, connect=connect_timeout))  # fmt: skip
    except httpx.HTTPError as exc:
        raise SlackError(
            "upload_failed", f"could not send {filename} to Slack's upload URL ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:  # "a non-200 response indicates a failure"
        raise SlackError(
            "upload_failed", f"Slack's upload URL refused {filename} (HTTP {response.status_code})"
        )


def share(
    access: SlackAccess, file_id: str, title: str | None, channel_id: str, thread_ts: str
) -> dict[str, Any]:
    """Step 3: share the uploaded file into the thread of `thread_ts` in `channel_id`."""
    body, _ = access.call(
        "files.completeUploadExternal",
        files=[{"id": file_id, **({"title": title} if title else {})}],
        channel_id=channel_id,
        thread_ts=thread_ts,
    )
    return body


def carries_file(file_id: str) -> Any:
    """A matcher for `Deliverer.find_posted`: the message that shares file `file_id`."""
    return lambda message: any(
        isinstance(f, dict) and f.get("id") == file_id for f in message.get("files") or []
    )
