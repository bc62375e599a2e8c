"""Fake Google APIs for docpipe tests (and the shared plumbing the NCB fake reuses).

Modules:
  server  - HTTP plumbing: routing, request recording, scripted responses, the /_fake/ control API
  oauth   - the OAuth 2.0 token endpoint and the Bearer check every API call goes through
  sheets  - Sheets v4 (get, batchUpdate addSheet, values.append)
  drive   - Drive v3 (files.list with a q subset, folder create, multipart/media/resumable upload)
Room is left for gmail.py and pubsub.py: a service is a class with register(app) and reset().
"""
