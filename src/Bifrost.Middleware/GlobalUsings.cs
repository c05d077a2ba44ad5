global using Microsoft.Extensions.DependencyInjection;
global using Bifrost.Middleware.OpenAI;
global using System.Text.Json;
global using System.Text.Json.Serialization;
