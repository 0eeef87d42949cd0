/// FNV-1a, 64 bits, of `text`'s UTF-8: the same in every run and process (unlike `Hasher`), for
/// names that several processes must agree on.
func stableHash(_ text: String) -> UInt64 {
    text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}
