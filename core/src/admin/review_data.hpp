// What the review web UI needs from the state store beyond the plain jobs API: a review
// item with the parked claim documents, their fields located on the page (OCR word boxes),
// the page image itself, filtered and sorted job lists, and the audit trail of reviewer
// actions.
//
// Contract:
// - Pure functions over a Store: thread-safe as the Store is; StoreError propagates.
// - Nothing here changes a job: the review decisions stay in AdminBackend (admin_actions).
// - Audit entries live in the store's key/value space under `audit/<job id>/`, one key per
//   action, so a job's record (owned by the runtime) is never rewritten by the admin server.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "state/store.hpp"

namespace docpipe::core::admin {

// ---- review items -----------------------------------------------------------------------

// The job's parked documents, each with its claim fields, the boxes of the OCR words each
// field was read from ({page, x, y, width, height, kind: "words"|"line"}, in raster pixels),
// its pages (index, width, height: the raster's; has_image; image: {source: "raster", width,
// height, scale} for a stored PNG preview, {source: "original"} for the attachment itself),
// warnings, missing fields, conflicts and the review reason. `documents` is empty when
// nothing is parked (e.g. the job left review meanwhile).
nlohmann::json review_item(Store& store, const Job& job);

// Where a claim field's value sits on the page, from its provenance and the page's OCR
// words: the words inside the field's line box that spell the value, or the line box when
// no word does. Empty when the value was not read from a page (email text, reviewer).
nlohmann::json field_boxes(const nlohmann::json& field, const nlohmann::json& pages);

struct PageImage {
    std::string media_type;
    std::string bytes;
};

// The image behind a parked document's page: the PNG preview of its raster that sink.review
// stored (admin/page_preview.hpp: any page, PDF and TIFF included), else — for documents
// parked without previews — the original when the browser can show it (a JPEG/PNG/GIF/
// WebP/BMP part of a one-page document). nullopt when neither exists.
std::optional<PageImage> page_image(Store& store, const std::string& job_id, const std::string& doc_id, int page);

// ---- job lists --------------------------------------------------------------------------

// Filters for the review queue and the job search; each optional one unset = no filter.
struct JobFilter {
    std::optional<std::string> route;          // confidence_level: high | medium | low
    std::optional<double> min_confidence, max_confidence;
    std::optional<std::string> provider;       // case-insensitive substring of provider_name
    std::optional<double> min_age_hours, max_age_hours;
    std::optional<std::string> text;           // case-insensitive substring of id, file, email id, provider, references, error
    std::string sort = "-created_at";          // [-]created_at | [-]confidence | [-]provider | [-]amount | [-]updated_at
};

// Reads the filter's query parameters; problems get one entry per bad parameter.
// `param` returns a query parameter's value.
JobFilter parse_job_filter(const std::function<std::optional<std::string>(std::string_view)>& param, nlohmann::json& problems);
// True when the request uses a filter or sort the store cannot do itself.
bool needs_scan(const JobFilter& f);

struct FilteredJobs {
    std::vector<nlohmann::json> jobs;  // the requested page
    std::size_t total = 0;             // matches before limit/offset
    bool truncated = false;            // more jobs than the scan cap: the newest were searched
};

// Scans up to `cap` jobs matching `base` (its status, dates and email id; newest first),
// filters, sorts and returns [offset, offset+limit).
FilteredJobs filter_jobs(Store& store, const JobQuery& base, const JobFilter& f, std::size_t limit, std::size_t offset,
                         std::int64_t now_ms, std::size_t cap = 20'000);

// ---- audit ------------------------------------------------------------------------------

// Records one reviewer action on a job: `entry` gets `at` (ISO 8601) and `at_ms` added.
void append_audit(Store& store, const std::string& job_id, nlohmann::json entry, std::int64_t now_ms);
// The job's audit entries, oldest first.
nlohmann::json read_audit(Store& store, const std::string& job_id);

// What an approval changes: {field: {from, to}} against current fields (a job's, or one
// document's claim fields), each field's value or the field itself when it is not an object.
nlohmann::json field_changes(const nlohmann::json& job_fields, const nlohmann::json& corrections);

}  // namespace docpipe::core::admin
