// sink.drive: the archive. Stores each document's original (its first raw part: for an email,
// the .eml; for an attachment document, the attachment) in Google Drive under
// <root_folder_id>/YYYY/MM/DD, the date of attribute received_at (else email_date, else now)
// at utc_offset_minutes.
//
// The calls:
// - folders: each level is looked up with files.list (q = name = 'YYYY' and '<parent>' in
//   parents and mimeType = 'application/vnd.google-apps.folder' and trashed = false) and
//   created when missing; ids are cached. Within the process one mutex serialises folder
//   creation, so two workers never both create a folder. Across processes they still can:
//   after creating, the folder is listed again and, when two exist, every process uses the
//   one with the smallest id (string order), so all files meet in one folder; the other
//   stays empty and is left alone (deleting it could race with a process still using it).
// - idempotency: the file's appProperties are docpipe_doc_id, docpipe_job (attribute root_id,
//   else parent_id, else the document id) and docpipe_sha256 (of the bytes). Before an
//   upload, files.list looks for appProperties has { key='docpipe_sha256' and value='<sha>' }
//   in the day's folder; a file found is reused, so a redelivered document is not stored twice
//   (within the process, documents with the same bytes are archived one after the other).
// - upload: up to `resumable_above` bytes one multipart/related request (metadata JSON, then
//   the bytes with the part's media type); above it a resumable session: POST for the session
//   (its URL comes in Location), then PUT chunks of `chunk_size` with Content-Range. A 308
//   continues from its Range header (what the server has, never what was sent); a lost
//   connection or a 5xx mid-way asks the session what it has (PUT, empty body, Content-Range
//   bytes */total) and resumes from there; a 404/410 session starts a new one. The session
//   URL is kept in the state store (drive/session/<sha>, 6 days) so a restart resumes it.
// - every call sends supportsAllDrives=true, and every list includeItemsFromAllDrives=true
//   (and corpora=allDrives with shared_drive: true, or shared-drive files are not found).
// - the file name is {email id}_{file name}: the message id without <> and both reduced to
//   [A-Za-z0-9._-] (others become _), at most 150 characters, keeping the extension.
//
// What each answer does: see google_client.hpp (2xx ok; 401 refresh once then hold; token
// refused → hold + health Unavailable; 429/403 rate limit → hold for Retry-After or 1-16 s;
// 403 permission or storageQuotaExceeded, 404 folder → hold + health Unavailable; 5xx/no
// answer → hold + circuit breaker; other 4xx → fail with Google's message). A document
// without a raw part fails: there is nothing to archive.
//
// Reference: drive_file_id = the file's id. Logs carry ids, sizes and counts, never the file
// name or content. Threading: write() may run on many threads at once (folder cache and
// folder creation behind mutexes). Ownership: the Context outlives the sink.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/component.hpp"
#include "google_client.hpp"

namespace docpipe::google {

class DriveSink : public Sink {
public:
    static ComponentDescriptor describe();
    DriveSink(const Config& config, Context& context);
    SinkResult write(const Document& doc) override;
    HealthReport health() override;

    // "{email id}_{file name}", sanitised (for tests).
    static std::string file_name(const Document& doc);
    // A value inside a Drive query string literal: ' and \ escaped.
    static std::string query_literal(const std::string& value);

private:
    std::string folder(const std::string& parent, const std::string& name);  // throws Stop
    std::vector<nlohmann::json> list(const std::string& q, const std::string& what);  // throws Stop
    std::string upload_multipart(const nlohmann::json& metadata, const Part& part, const std::string& what);
    std::string upload_resumable(const nlohmann::json& metadata, const Part& part, const std::string& sha, const std::string& folder_id,
                                 const std::string& what);
    std::string start_session(const nlohmann::json& metadata, const Part& part, const std::string& what);
    std::string files_url(bool upload) const;
    std::string file_id_of(const net::HttpResponse& response, const std::string& what);

    GoogleClient client_;
    Context& ctx_;
    std::string drive_url_;
    std::string upload_url_;
    std::string root_folder_id_;
    bool shared_drive_;
    std::size_t resumable_above_;
    std::size_t chunk_size_;
    int utc_offset_minutes_;

    std::mutex cache_mutex_;
    std::map<std::string, std::string> folders_;  // "<parent>/<name>" -> id
    std::mutex create_mutex_;                      // one folder lookup-or-create at a time

    // Contents being archived now: a second document with the same bytes waits for the first,
    // then finds its file instead of uploading it again.
    std::mutex busy_mutex_;
    std::condition_variable busy_cv_;
    std::set<std::string> busy_;

    std::atomic<std::uint64_t> uploaded_{0};
    std::atomic<std::uint64_t> reused_{0};
};

}  // namespace docpipe::google
