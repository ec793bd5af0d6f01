"""Telegram control plane (aiogram 3). Knows chat, buttons and text; holds no trading logic."""
