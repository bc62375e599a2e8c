// The "mail" package: emails in (Maildir, IMAP), emails apart (MIME attachments and body text).
#include "docpipe/plugin.hpp"
#include "imap_source.hpp"
#include "maildir_source.hpp"
#include "mime_transform.hpp"

DOCPIPE_PLUGIN("mail", "0.1.0", "Maildir and IMAP sources, MIME splitting (GMime)",
               docpipe::component<docpipe::mail::MaildirSource>(),
               docpipe::component<docpipe::mail::ImapSource>(),
               docpipe::component<docpipe::mail::MimeTransform>())
