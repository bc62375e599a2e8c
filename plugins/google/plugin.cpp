// The "google" package: Gmail intake (Pub/Sub pull or push, or polling), the audit log in
// Google Sheets and the archive in Google Drive, on one HTTP client and one Google auth.
#include "docpipe/plugin.hpp"
#include "drive_sink.hpp"
#include "gmail_source.hpp"
#include "sheets_sink.hpp"

DOCPIPE_PLUGIN("google", "0.1.0", "Google Workspace: Gmail intake, audit rows in Sheets, originals archived in Drive",
               docpipe::component<docpipe::google::SheetsSink>(),
               docpipe::component<docpipe::google::DriveSink>(),
               docpipe::component<docpipe::google::GmailSource>())
