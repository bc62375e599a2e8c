// transform.confidence_router: sends a claim document out on `high`, `medium` or `low`
// by its overall confidence (fields["confidence"], set by transform.claims).
//
// - A document missing a required field goes to `low` whatever its score, with the reason
//   in the "review_reason" attribute (the review sink records it).
// - qa_sample_rate flags that share of `high` documents for a person to check
//   (fields["review_flag"] = "qa_sample"); the choice is a hash of the document id, so a
//   retry of the same document is flagged the same way.
// Stateless; process() may run on several threads at once.
#pragma once

#include "docpipe/component.hpp"

namespace docpipe::claims {

class ConfidenceRouter : public Transform {
public:
    static ComponentDescriptor describe();
    ConfidenceRouter(const Config& config, Context& context);
    void process(const DocumentPtr& input, Outputs& out) override;

    std::string route_for(const Document& doc, std::string& reason) const;

private:
    Context& ctx_;
    double high_, medium_, qa_rate_;
};

}  // namespace docpipe::claims
