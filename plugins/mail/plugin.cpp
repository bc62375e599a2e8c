// The "mail" package: emails in (Maildir), emails apart (MIME attachments and body text).
#include "docpipe/plugin.hpp"
#include "maildir_source.hpp"
#include "mime_transform.hpp"

DOCPIPE_PLUGIN("mail", "0.1.0", "Maildir source and MIME splitting (GMime)",
               docpipe::component<docpipe::mail::MaildirSource>(),
               docpipe::component<docpipe::mail::MimeTransform>())
