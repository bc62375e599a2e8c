// Test credentials for the network tests: a fresh RSA key (as Google puts one in a
// service-account key file) and a temporary file that holds such a key file.
// Header-only; each call makes a new key (2048 bits, a few ms). Tests only.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace docpipe::test {

// A new RSA private key as PKCS#8 PEM ("BEGIN PRIVATE KEY").
inline std::string new_rsa_key_pem() {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    EVP_PKEY_free(key);
    return pem;
}

// A file with `text` in the temp folder, removed with the object.
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(const std::string& text) {
        std::string pattern = (std::filesystem::temp_directory_path() / "docpipe-key-XXXXXX").string();
        const int fd = mkstemp(pattern.data());
        ::close(fd);
        path = pattern;
        std::ofstream(path) << text;
    }
    ~TempFile() { std::filesystem::remove(path); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
};

}  // namespace docpipe::test
