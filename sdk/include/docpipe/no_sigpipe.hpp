// docpipe SDK — keeping SIGPIPE from killing the host while a component writes to a socket.
//
// A library that writes with write(2) (OpenSSL's socket BIO, hiredis) raises SIGPIPE when
// the peer has closed the connection, and the default action ends the whole process. The
// `docpipe` binary ignores SIGPIPE, but a component cannot count on every host doing so (a
// test binary, an embedding application). Wrap such writes in a ScopedNoSigpipe: the write
// then fails with EPIPE, which the library reports as an error the component handles.
//
// Contract:
// - Threading: affects only the calling thread's signal mask, for the guard's lifetime; use
//   it on the thread that writes, around the write. Not for use across threads.
// - On destruction it discards a SIGPIPE raised while it was alive (one that was already
//   pending before it is left alone) and restores the previous mask.
// - Header-only, no state beyond the guard: not part of the plugin ABI.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

namespace docpipe {

class ScopedNoSigpipe {
public:
    ScopedNoSigpipe() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~ScopedNoSigpipe() {
        if (!was_pending_) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE) == 1) {
                timespec now{0, 0};
                sigtimedwait(&pipe_, nullptr, &now);
            }
        }
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
    ScopedNoSigpipe(const ScopedNoSigpipe&) = delete;
    ScopedNoSigpipe& operator=(const ScopedNoSigpipe&) = delete;

private:
    sigset_t pipe_{}, previous_{};
    bool was_pending_ = false;
};

}  // namespace docpipe
