"""Hand-built multipart/form-data bodies, for the malformed and unusual forms clients send."""


def multipart(
    parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ"
) -> tuple[bytes, dict[str, str]]:
    """A hand-built multipart body, for the malformed and unusual forms clients send."""
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
        )
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}
