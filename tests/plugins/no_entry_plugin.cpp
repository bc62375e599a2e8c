// A shared library that is not a docpipe plugin at all.
extern "C" int some_unrelated_function() { return 42; }
