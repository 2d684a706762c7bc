/*
 * Stand-in for Elasticsearch's native vector library (libvec), which is not published to
 * Maven Central. Elasticsearch loads libvec before it enables any native code (zstd
 * included) and asks it for its SIMD capabilities; answering 0 makes it use its Java vector
 * code while the rest of native access (zstd for the best_compression codec, memory
 * locking checks) works. Compiled by `python -m stack up` into <datadir>/elasticsearch/native.
 */
int vec_caps(void) { return 0; }
