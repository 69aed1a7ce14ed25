"""esign: issue PAdES-signed PDF certificates for Mongolian e-government."""
