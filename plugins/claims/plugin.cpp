// The "claims" package: claim fields from receipts and emails, and routing by confidence.
#include "docpipe/plugin.hpp"
#include "claims_transform.hpp"
#include "confidence_router.hpp"
#include "ncb_sink.hpp"
#include "reread_gate.hpp"

DOCPIPE_PLUGIN("claims", "0.1.0", "Insurance claim fields from receipts and emails; confidence routing; NCB submission",
               docpipe::component<docpipe::claims::ClaimsTransform>(),
               docpipe::component<docpipe::claims::ConfidenceRouter>(),
               docpipe::component<docpipe::claims::RereadGate>(),
               docpipe::component<docpipe::claims::NcbSink>())
