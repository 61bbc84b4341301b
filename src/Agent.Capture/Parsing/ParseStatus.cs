namespace Tripline.Capture.Parsing;

/// <summary>The outcome of parsing one frame. Everything but <see cref="Ok"/> is counted by the caller, never thrown.</summary>
public enum ParseStatus : byte
{
    Ok = 0,

    // Well-formed frames that make no flow: counted as skipped.
    NonIp,
    OtherProtocol,
    UnsupportedLinkType,

    // Malformed frames: counted as malformed, by reason.
    TruncatedLinkHeader,
    TruncatedIpHeader,
    BadIpVersion,
    BadIpHeaderLength,
    BadIpTotalLength,
    BadExtensionHeader,
    TruncatedTransportHeader,
    BadTransportHeader,
    TooManyHeaders,
}

public static class ParseStatusExtensions
{
    public const int Count = (int)ParseStatus.TooManyHeaders + 1;

    public static bool IsMalformed(this ParseStatus status) => status >= ParseStatus.TruncatedLinkHeader;

    public static bool IsSkipped(this ParseStatus status) => status is ParseStatus.NonIp or ParseStatus.OtherProtocol or ParseStatus.UnsupportedLinkType;

    /// <summary>The label used in metrics and summaries (snake_case, stable).</summary>
    public static string Reason(this ParseStatus status) => status switch
    {
        ParseStatus.Ok => "ok",
        ParseStatus.NonIp => "non_ip",
        ParseStatus.OtherProtocol => "other_protocol",
        ParseStatus.UnsupportedLinkType => "unsupported_link_type",
        ParseStatus.TruncatedLinkHeader => "truncated_link_header",
        ParseStatus.TruncatedIpHeader => "truncated_ip_header",
        ParseStatus.BadIpVersion => "bad_ip_version",
        ParseStatus.BadIpHeaderLength => "bad_ip_header_length",
        ParseStatus.BadIpTotalLength => "bad_ip_total_length",
        ParseStatus.BadExtensionHeader => "bad_extension_header",
        ParseStatus.TruncatedTransportHeader => "truncated_transport_header",
        ParseStatus.BadTransportHeader => "bad_transport_header",
        ParseStatus.TooManyHeaders => "too_many_headers",
        _ => "unknown",
    };
}
