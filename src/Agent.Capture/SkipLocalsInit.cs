// The parser and the capture-file reader stackalloc nothing they read before writing, and every
// struct they fill is assigned field by field, so zeroing locals on entry is wasted work per packet.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
