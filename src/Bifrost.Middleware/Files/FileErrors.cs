namespace Bifrost.Middleware.Files;

/// <summary>The errors of file handling shared by the endpoints and the file stores.</summary>
internal static class FileErrors
{
    /// <summary>413 <c>file_too_large</c>: a file over the limit (an upload, a stored file, a batch file).</summary>
    public static BifrostException TooLarge(long maxBytes) =>
        BifrostException.Gateway(413, "invalid_request_error", "file_too_large", $"The file is larger than the limit of {maxBytes} bytes.", "file");
}
