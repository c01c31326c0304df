"""What tests share: tiny models, images, multipart bodies, free ports, live servers."""
