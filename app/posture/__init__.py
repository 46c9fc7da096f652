"""Storage posture: whether the privacy policy's storage promises (two-factor sign-in, SSL in transit) hold."""
