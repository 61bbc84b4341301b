using System.Runtime.CompilerServices;

namespace Tripline.Capture.Parsing;

/// <summary>What the first bytes of a TCP segment's payload are, as far as the mesh audit asks (design.md section 10).</summary>
public enum PayloadKind : byte
{
    /// <summary>The segment carries no payload (a bare SYN, ACK, FIN or RST).</summary>
    None = 0,
    /// <summary>There is payload, but the capture stopped before enough of it to tell (snaplen, long options).</summary>
    Unknown = 1,
    /// <summary>The payload does not begin with a TLS record header.</summary>
    Plain = 2,
    /// <summary>The payload begins with a TLS record header: content type 20 to 23, version 3.0 to 3.4.</summary>
    Tls = 3,
}

/// <summary>
/// One byte that classifies a payload: the kind in the low two bits and, for TLS, the version's minor number plus one
/// in the next three (0: not known). Only this classification is kept, never a payload byte: the packet path reads a
/// few bytes in place, answers with this value, and moves on.
/// </summary>
public readonly struct PayloadClass : IEquatable<PayloadClass>
{
    private readonly byte _value;

    private PayloadClass(byte value) => _value = value;

    public static readonly PayloadClass None = default;
    public static readonly PayloadClass Unknown = new((byte)PayloadKind.Unknown);
    public static readonly PayloadClass Plain = new((byte)PayloadKind.Plain);

    public PayloadKind Kind => (PayloadKind)(_value & 3);

    /// <summary>
    /// The highest TLS version that the captured bytes declare, as its minor number (<c>3.x</c>: 0 for SSL 3.0, 1 for TLS
    /// 1.0, 3 for TLS 1.2), or -1. TLS 1.3 declares 3.3 in every field that the first bytes hold (its real version is
    /// in an extension, deep in the hello), so it reads as 1.2 here.
    /// </summary>
    public int TlsMinor => (_value >> 2) - 1;

    /// <summary>The version as people write it: <c>"1.2"</c>, <c>"SSL3.0"</c>; null when not known.</summary>
    public string? TlsVersion => TlsMinor switch
    {
        0 => "SSL3.0",
        1 => "1.0",
        2 => "1.1",
        3 => "1.2",
        4 => "1.3",
        _ => null,
    };

    public static PayloadClass Tls(int minor) => new((byte)((int)PayloadKind.Tls | (minor is >= 0 and <= 4 ? (minor + 1) << 2 : 0)));

    /// <summary>
    /// Classifies a TCP payload from its captured bytes and the length its headers declare. What the capture cut off is
    /// <see cref="PayloadKind.Unknown"/> unless the bytes that are there already rule TLS out: a guess is never taken
    /// for an answer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static PayloadClass Classify(ReadOnlySpan<byte> captured, int declaredLength)
    {
        if (declaredLength <= 0) return None;
        if (captured.Length > declaredLength) captured = captured[..declaredLength];
        if (captured.IsEmpty) return Unknown;
        // A record header: content type (change_cipher_spec 20, alert 21, handshake 22, application_data 23),
        // then the major version 3 and a minor version of 0 to 4. Five bytes with the length; three tell it apart.
        if ((uint)(captured[0] - 20) > 3) return Plain;
        if (captured.Length < 3) return Unknown;
        if (captured[1] != 3 || captured[2] > 4) return Plain;
        int minor = captured[2];
        // A ClientHello or ServerHello (handshake type 1 or 2) declares the version it speaks after the 4-byte
        // handshake header: a ClientHello's record says 3.1 for compatibility while the hello says 3.3.
        if (captured[0] == 22 && captured.Length >= 11 && captured[5] is 1 or 2 && captured[9] == 3 && captured[10] <= 4 && captured[10] > minor) minor = captured[10];
        return Tls(minor);
    }

    public bool Equals(PayloadClass other) => _value == other._value;
    public override bool Equals(object? obj) => obj is PayloadClass other && Equals(other);
    public override int GetHashCode() => _value;
    public static bool operator ==(PayloadClass left, PayloadClass right) => left._value == right._value;
    public static bool operator !=(PayloadClass left, PayloadClass right) => left._value != right._value;
    public override string ToString() => Kind == PayloadKind.Tls && TlsVersion is { } v ? $"Tls({v})" : Kind.ToString();
}
