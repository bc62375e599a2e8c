// transform.word_count — counts the words of a document's text. The header exposes what the
// plugin's unit test needs: the descriptor (with its factory), so a NodeRunner can build the
// component without loading a plugin file, and the counting rule on its own.
#pragma once

#include <cstdint>
#include <string_view>

#include "docpipe/component.hpp"

namespace word_count {

// Everything `docpipe plugins describe transform.word_count` shows, plus the factory.
docpipe::ComponentDescriptor descriptor();

struct Counts {
    std::int64_t words = 0;
    std::int64_t characters = 0;  // code points that are not whitespace
    std::int64_t long_words = 0;  // words of at least `long_from` code points (0 when long_from is 0)
};

// A word is a run of characters between ASCII whitespace that holds at least one letter or
// digit (any non-ASCII character counts as a letter), so "RM 12.50" is two words and a lone
// "-" is none. Text is taken as UTF-8. `long_from` 0 leaves long_words at 0.
Counts count_text(std::string_view text, std::int64_t long_from);

}  // namespace word_count
