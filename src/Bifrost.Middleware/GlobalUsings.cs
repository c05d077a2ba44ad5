global using Microsoft.Extensions.DependencyInjection;
global using Bifrost.Middleware.OpenAI;
global using System.Text.Json;
global using System.Text.Json.Serialization;
global using Bifrost.Middleware.Serialization;
global using Microsoft.AspNetCore.Http;
global using Microsoft.Extensions.Logging;
