// Components compiled into the runtime (package "core"): they need the runtime's state
// store API, which plugins do not get. sink.review (review_sink.cpp) and transform.dedup
// (dedup_transform.cpp, described there).
#pragma once

#include "docpipe/plugin.hpp"

namespace docpipe::core {

// sink.review — parks a document in the review (exception) queue: the document (with its
// bytes) is stored under review/<job id>/<doc id>, each page raster as a scaled PNG under
// review_page/<job id>/<doc id>/<page> (admin/page_preview.hpp), and the job's status becomes "review"
// with the reason. A reviewer then approves it (with corrections) through
// POST /api/v1/exceptions/{id}/approve, which sends it on to the node named by
// admin.approved_node, or rejects it.
const PluginManifest& builtin_manifest();

class Store;

// Stores `doc` in the review queue as sink.review does (the record under review/<job id>/<doc
// id> with `reason` and ctx's node name, each page raster as a PNG preview), so a reviewer
// can see, correct and approve it. sink.review calls it, and so does the runtime for a
// document another sink parked (sink.ncb, when NCB refuses a claim): without the record the
// approval the runbook prescribes would find nothing to send. Throws StoreError.
void store_for_review(Store& store, Context& ctx, const Document& doc, const std::string& reason);

// The job a document belongs to: the runtime stamps the source document's job id (its
// document id, see kUpstreamJobAttribute for the exception) into this attribute, and
// Document::make_child copies attributes to children.
inline constexpr const char* kJobIdAttribute = "job_id";
// Set by a source whose documents come from another runtime's job (source.redis_stream:
// the producing stage's job id). When it equals the document's own id — an attachment that
// crosses from the OCR stage to delivery unchanged — that stage already keeps a job under
// this id in the shared store, so this runtime's job is `<doc id>@<source node>` instead:
// one record per stage, not one that the last stage to write decides.
inline constexpr const char* kUpstreamJobAttribute = "upstream_job_id";
// The job's status before this delivery began ("" for a new job), stamped by the runtime so
// transform.dedup can tell a redelivery after a crash from a re-sent, already-accepted one.
inline constexpr const char* kPreviousStatusAttribute = "previous_status";
// The first job of a document's journey: the runtime that takes a source document without
// one stamps the document's own id; documents that crossed a stream keep it (attributes
// travel), so every stage's job of one email carries the email's job id as its root_id.
inline constexpr const char* kRootJobAttribute = "root_job_id";
// Set on source documents taken with RuntimeOptions::redeliver: dedup lets them through.
inline constexpr const char* kRedeliverAttribute = "redeliver";
// Set on a claim a reviewer approved (AdminActions::approve): the approval's time (ISO 8601),
// as the job's references.approved_at. sink.sheets marks the approval's row "(approved)".
inline constexpr const char* kApprovedAtAttribute = "approved_at";
// Set by the runtime on a document a sink parked for review (sink.review; sink.ncb on a
// refusal) and passes on from its `accepted` port: the sink's name. The sinks after it key
// their ledger entries for it apart ("<doc id>@parked"), so the audit row a claim got when it
// went to review does not stand for the claim a reviewer approves later.
inline constexpr const char* kParkedByAttribute = "parked_by";
// Set beside kParkedByAttribute: why that sink parked it (NCB's refusal, the review reason),
// so the audit row of a claim in review says why without a look at the job.
inline constexpr const char* kParkedReasonAttribute = "parked_reason";
// Optional attribute a component sets to say why a document needs a reviewer.
inline constexpr const char* kReviewReasonAttribute = "review_reason";

}  // namespace docpipe::core
